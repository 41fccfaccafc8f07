"""The sub-commands of ``hmrm``, one module per family; :mod:`hmrm.cli` assembles them.

Each module holds, for each of its commands, an ``add_<command>(sub)`` that declares the options
(choices and defaults read from the package, so nothing is typed twice) and a ``_cmd_<command>(args)``
that runs it. Both import the library inside the function, so that ``hmrm --help`` and a refused
option answer without loading PyTorch. :mod:`.args` holds what they share."""
