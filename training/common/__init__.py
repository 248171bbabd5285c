"""Small utilities shared by every stage (atomic files, image conversion, devices)."""
