"""第3章のデモ。使い方: python demos/weight_init.py --out figures (tinygrad-jp demo weight_init と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("weight_init")
