"""GRIMBOTS thin app: the platform's hot paths, for the QI 500 toolkit to deploy, load-test and verify."""

__version__ = "0.1.0"
