/// The archive tier (sealed-segment bundles, retention, legal holds). See issue 4.
public enum Archive {}
