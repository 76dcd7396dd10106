"""gptbert: BERT or GPT? Build, train, measure, compare, compress and serve both families.

Importing the package is cheap (no torch); import submodules for the real work.
"""

__version__ = "0.1.0"
