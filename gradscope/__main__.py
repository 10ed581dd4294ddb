"""python -m gradscope"""

from .runtime import main

main()
