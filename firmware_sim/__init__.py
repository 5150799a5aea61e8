"""Simulation of Raspberry Pi-class boards running the edge_audio device loop."""
