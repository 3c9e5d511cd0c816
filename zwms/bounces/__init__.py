"""
Return-mail analysis (SPEC W8, Nmail VI): L{analyse} explains a bounce;
L{rules} holds the categories and their advice in Korean and English.
"""

from zwms.bounces.analysis import Analysis, Failure, analyse, looks_like_bounce
from zwms.bounces.rules import ADVICE, CATEGORIES

__all__ = ["analyse", "looks_like_bounce", "Analysis", "Failure", "ADVICE", "CATEGORIES"]
