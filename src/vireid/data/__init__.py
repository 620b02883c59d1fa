"""Data: dataset layouts read in place, SynthVI, training sets, decoded-image cache, sampler, transforms."""
