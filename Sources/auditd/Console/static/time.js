// Times as the admin chooses to read them: UTC or this browser's zone, always named. The date
// fields are read in the same zone, and the presets set them for the usual windows.
const KEY = "auditlog.zone";
const $ = (id) => document.getElementById(id);
const pad = (n, w = 2) => String(n).padStart(w, "0");

export function local() {
  return localStorage.getItem(KEY) === "local";
}

export function zoneName() {
  return local() ? Intl.DateTimeFormat().resolvedOptions().timeZone || "this browser's zone" : "UTC";
}

// `iso` (RFC 3339, from the log) in the chosen zone: YYYY-MM-DD HH:MM:SS.mmm.
export function showTime(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return String(iso ?? "");
  if (!local()) return d.toISOString().replace("T", " ").replace("Z", "");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A date field's value read in the chosen zone, as an RFC 3339 UTC time (null if empty).
export function fieldTime(value) {
  if (!value) return null;
  const d = new Date(local() ? value : `${value}Z`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// What a date field shows for instant `iso` in the chosen zone.
export function fieldValue(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return "";
  return showTime(d.toISOString()).replace(" ", "T").slice(0, 19);
}

// Names the zone wherever a time is read or shown.
export function labelTimes() {
  $("l-from").textContent = `From (${zoneName()})`;
  $("l-to").textContent = `To (${zoneName()})`;
  $("th-time").textContent = `Received (${zoneName()})`;
  $("f-zone").value = local() ? "local" : "utc";
}

// Switches the zone; the date fields keep the same instants.
export function setZone(zone) {
  const from = fieldTime($("f-from").value);
  const to = fieldTime($("f-to").value);
  localStorage.setItem(KEY, zone === "local" ? "local" : "utc");
  $("f-from").value = fieldValue(from);
  $("f-to").value = fieldValue(to);
  labelTimes();
}

// A preset window ending now: `seconds` back, the end left open.
export function preset(seconds) {
  $("f-from").value = fieldValue(new Date(Date.now() - seconds * 1000).toISOString());
  $("f-to").value = "";
}
