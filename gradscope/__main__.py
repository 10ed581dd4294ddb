"""python -m gradscope"""

from .cli import main

main()
