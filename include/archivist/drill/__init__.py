"""Restore drills: a bundle restored into scratch targets, compared, the scratch removed, the verdict kept."""
