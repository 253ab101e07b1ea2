"""第3章のデモ。使い方: python demos/activations.py --out figures (tinygrad-jp demo activations と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("activations")
