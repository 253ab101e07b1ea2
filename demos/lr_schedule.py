"""第3章のデモ。使い方: python demos/lr_schedule.py --out figures (tinygrad-jp demo lr_schedule と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("lr_schedule")
