"""The frozen ``esquire`` executable's entry (``scripts/build-binary``): the command line,
after ``freeze_support`` (a process multiprocessing starts from the executable, such as
the query workers' forkserver, runs its own code, not the command line)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from service.cli import main

    sys.exit(main())
