"""budcore's discrete-event simulator: workloads, engine and reports for capacity planning.

The simulator drives the real scheduling core (``budcore``) through its ports on a virtual clock;
nothing here re-implements a scheduling decision.
"""
