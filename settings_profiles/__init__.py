"""Settings profiles, one per memory budget.

A profile named ``NAME`` lives in the module ``profile_NAME`` of this package
and holds module-level UPPERCASE settings. ``plt.profiles.ProfileAddon``
applies the one named by the ``PROFILE`` setting (default ``"1gb"``).
"""
