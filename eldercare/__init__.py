"""eldercare package."""
