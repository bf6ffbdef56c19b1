"""The built-in sample dataset: LRW-layout clips of a real face photo speaking real words.

Speech comes from espeak-ng (with phoneme timings), the mouth motion from a viseme model with
coarticulation, the video from warping skimage's astronaut photo (or your own face photos).
"""

from talkface.sample.builder import SampleSummary, build_sample, choose_words, split_counts, vocabulary

__all__ = ["SampleSummary", "build_sample", "choose_words", "split_counts", "vocabulary"]
