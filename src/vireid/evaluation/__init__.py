"""Evaluation: vectorised CMC / mAP / mINP, the SYSU-MM01 and RegDB protocols, re-ranking."""
