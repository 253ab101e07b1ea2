"""第3章のデモ。使い方: python demos/train_mlp.py --out figures (tinygrad-jp demo train_mlp と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("train_mlp")
