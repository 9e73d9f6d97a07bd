"""Files in and out: Binance kline files and the HTML report."""
