"""The chip core, beneath every stage: the typed chip IR (``ir``), its simulator (``simulator``) and the exact
neuron kernels (``kernels``). frontend -> train -> convert -> deploy -> report all read this package; it
imports none of them (only ``ptsnn.numerics``, ``ptsnn.errors`` and ``ptsnn.fileio``)."""
