"""History: the lake the job writes, read back (`fraudctl lake`), and replayed through the job's
own rule SQL (`fraudctl backtest`, and each rule's given/expect cases)."""
