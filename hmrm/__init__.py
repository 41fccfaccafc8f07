"""The HMRM course library: micro-expression recognition rebuilt from its parts and evaluated honestly.

Data flows one way: :mod:`hmrm.data` (data sets and SynthME) -> :mod:`hmrm.face` (alignment, regions)
-> :mod:`hmrm.flow` (optical flow) -> :mod:`hmrm.features` (network inputs) -> :mod:`hmrm.augment`
(MotionMix) -> :mod:`hmrm.model` (HMRM, baselines; :mod:`hmrm.ssm` the selective scan) ->
:mod:`hmrm.train` (LOSO, scores, tables). Every measured table is saved with a JSON twin
(:mod:`hmrm.resultfiles`); :mod:`hmrm.evidence` reads the committed comparisons with their verdicts and
:mod:`hmrm.choices` sets the paper's choices apart from ours. ``hmrm --help`` lists the commands.
"""
__version__ = "0.1.0"
