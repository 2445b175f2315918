"""The command-line tools, installed as console scripts (setup.py) and run by ``tools/*.py``.

Each module has ``main`` (returns the exit status) and ``cli`` (the console-script entry point).
``train`` keeps Detectron2's convention: ``main(args)`` takes the parsed arguments and ``cli``
parses and launches. Config arguments take a path or a packaged config name
(``boneage_d2.model_zoo``).
"""
