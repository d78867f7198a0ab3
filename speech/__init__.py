"""Offline speech: the model on disk, audio in, a transcript out, and the desk it is about.

The audio never leaves the hotline's machines: recognition runs locally with Vosk (Mandarin)
and pocketsphinx (English, when no English Vosk model is installed), in worker processes so
that the event loop never waits on a decoder.
"""
