"""Helpers the test modules share (import them from here, never from another test module or
from conftest.py): where the real media is, small media files, CLI runs, and custom loss terms."""
