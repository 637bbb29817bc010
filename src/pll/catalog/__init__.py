"""The drug catalogue (FEST): import, lookup, interaction index."""
