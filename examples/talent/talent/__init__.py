"""Talent: the reference application of Turing (job postings, candidate profiles, skills).

Modules: ``taxonomy`` (skills, aliases, parents and the free-text matcher), ``generator``
(seeded sample database with known ground truth), ``extractor`` (deterministic offline
extraction, used when no model is configured), ``matching`` (candidate ranking).
"""
