"""User-facing errors: the command line prints them as one line and exits non-zero."""


class TalkfaceError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option); never a bug."""


class MediaError(TalkfaceError):
    """A media file is missing, empty, truncated, corrupt or of an unsupported kind."""


class NoFaceError(TalkfaceError):
    """No face was found in an image."""


class MissingWeightsError(TalkfaceError):
    """Model weights are needed but are not on this machine (and cannot be downloaded)."""
