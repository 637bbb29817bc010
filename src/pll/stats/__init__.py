"""Rollout and quality statistics: indicators, and the national ambitions they are held to."""
