"""Data: the sample record, class schemes, the face bank and SynthME."""
from .classes import SCHEMES
from .records import DataError, Sample, SampleSet

__all__ = ["SCHEMES", "DataError", "Sample", "SampleSet"]
