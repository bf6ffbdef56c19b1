"""Reading and writing talking-face media with PyAV: any container in, H.264 + AAC mp4 out."""

from talkface.media.audio_io import read_audio
from talkface.media.image_io import read_image
from talkface.media.mp4_writer import Mp4Writer, write_mp4
from talkface.media.video_io import VideoClip, read_video

__all__ = ["read_audio", "read_image", "read_video", "VideoClip", "Mp4Writer", "write_mp4"]
