"""The demand-forecast example: synthetic daily unit sales per store and family, LightGBM."""
