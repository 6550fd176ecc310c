"""DMC: Data-Model Compatibility for student-centered reasoning distillation."""

__version__ = "0.1.0"
