"""subspaces.align: maps between representation spaces.

Fitted on paired samples and applied to new ones: translators (Procrustes, linear, affine,
ridge), relative representations and zero-shot stitching, neuron matching, backward-compatible
orthogonal extension (OCA), subspace-projected alignment, functionally equivalent feature
merging and trainable stitching layers.
"""
