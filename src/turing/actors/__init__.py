"""Actors: who performs a step. Models implement `Actor`; scripts run through `turing.scripts`."""
