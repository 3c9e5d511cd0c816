"""
Return-mail analysis (SPEC W8, Nmail VI): L{analyse} explains a bounce;
L{rules} holds the categories and their advice in Korean and English.
"""

from zwms.bounces.analysis import Analysis, Failure, analyse
from zwms.bounces.rules import ADVICE, CATEGORIES

__all__ = ["analyse", "Analysis", "Failure", "ADVICE", "CATEGORIES"]
