"""Sommelier trainer: S3 data + spec -> evaluated, versioned scikit-learn artifacts."""
