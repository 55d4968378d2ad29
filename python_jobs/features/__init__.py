"""Feature families of the Python job layer, one module per family.

Each module exposes one public function named after it and registers itself in
:mod:`python_jobs.features.registry`. ``registry.families()`` imports them all.
"""
