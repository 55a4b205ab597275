// Sign-in and sign-up forms: the browser's IANA time zone (e.g. Asia/Shanghai) goes into the
// hidden `time_zone` field, so a person's first sign-in sets the zone their times are shown in.
// The server checks the name against the tz database; without script the field stays empty.
document.addEventListener("DOMContentLoaded", () => {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  for (const field of document.querySelectorAll("input[data-browser-time-zone]")) {
    field.value = zone;
  }
});
