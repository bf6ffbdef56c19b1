"""talkface: one face image + a speech clip -> a talking-face video, through predicted landmarks."""

__version__ = "0.1.0"

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
