"""Data: the sample record, class schemes, the face bank and SynthME."""
from .classes import SCHEMES, ClassScheme, get_scheme, normalise_emotion
from .records import DataError, Sample, SampleSet

__all__ = ["SCHEMES", "ClassScheme", "DataError", "Sample", "SampleSet", "get_scheme", "normalise_emotion"]
