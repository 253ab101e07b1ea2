"""tinygrad_jp のベンチマーク。

4 つのワークロードを、tinygrad_jp・手書きの numpy (教科書どおりのものと、速さを詰めたもの)・
PyTorch (入っていれば) で、同じ初期値と同じデータを使って計る:

* (a) 10 要素の ``relu(x*w+b).sum()`` とその逆伝播 (``tiny.py``)
* (b) MLP 784-100-100-100-100-10、ReLU、バッチ 128、float32、softmax 交差エントロピー、SGD の
  1 ステップと、2,000 ステップの間の常駐メモリ (``mlp.py``)
* (c) MLP 2-16-16-1、tanh、100 点、全バッチの平均二乗誤差の 1 ステップ (``toy.py``)
* (d) 10 万段の鎖 ``y = y*1.0001 + 0.0`` の構築と逆伝播、時間とメモリ (``chain.py``)

まず各実装の損失が numpy の参照実装と float32 の精度で一致すること、(b) が float32 のまま
進むことを確かめ (違えば終了コード 1 で止まる)、そのあと実装ごとに新しいプロセスで、
ウォームアップの後の数ラウンドの中央値を計る。結果は Markdown の表で表示し、
``benchmarks/results/latest.json`` に書く。

実行::

    python -m benchmarks            # すべて (数分)
    python -m benchmarks --quick    # 動作確認だけ (計測としては使わない)
    python -m benchmarks --only a,b
"""
