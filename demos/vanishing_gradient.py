"""第3章のデモ。使い方: python demos/vanishing_gradient.py --out figures (tinygrad-jp demo vanishing_gradient と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("vanishing_gradient")
