"""AOER Orchestrator: keeps the Answer Engine Optimization Rating fresh for every dealership."""

__version__ = "0.1.0"
