"""第3章のデモ。使い方: python demos/backprop_steps.py --out figures (tinygrad-jp demo backprop_steps と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("backprop_steps")
