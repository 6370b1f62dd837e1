"""The package version, kept in the bottom layer so that every layer can record it in files and reports."""

__version__ = "0.1.0"
