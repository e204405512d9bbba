"""Systems over time and their decision processes (RL environments wrap these)."""
