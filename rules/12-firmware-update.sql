/*+++
id = "firmware-update"
title = "Remote firmware update"
criterion = """After UpdateFirmware, FirmwareStatusNotification Downloading is followed by Installed
(with Downloaded and Installing in order when sent), then the charger reboots: a BootNotification
with the new firmwareVersion."""
function = 12
severity = "error"
references = ["OCPP 1.6 section 5.19 Update Firmware", "OCPP 1.6 section 4.5 Firmware Status Notification", "OCTT TC_044"]
[params]
firmware_timeout_s = 3600   # statuses and the reboot within this after UpdateFirmware
+++*/
WITH updates AS (
    SELECT *,
           lead(call_ts) OVER (PARTITION BY charge_point_id ORDER BY call_ts) AS next_update_ts
    FROM calls
    WHERE action = 'UpdateFirmware' AND direction = 'cs_to_cp' AND NOT orphan_answer
),
statuses AS (
    SELECT u.charge_point_id, u.connection_id, u.unique_id, u.call_ts, u.answered, u.answer_type,
           u.error_code, u.next_update_ts,
           min(f.ts) FILTER (WHERE f.status = 'Downloading') AS downloading_ts,
           min(f.ts) FILTER (WHERE f.status = 'Downloaded') AS downloaded_ts,
           min(f.ts) FILTER (WHERE f.status = 'Installing') AS installing_ts,
           min(f.ts) FILTER (WHERE f.status = 'Installed') AS installed_ts,
           arg_min(f.unique_id, f.ts) FILTER (WHERE f.status = 'Installed') AS installed_unique_id,
           coalesce(bool_or(f.status IN ('DownloadFailed', 'InstallationFailed')), false)
               AS failed,
           string_agg(f.status, ' -> ' ORDER BY f.ts) AS sequence
    FROM updates u
    LEFT JOIN firmware_status f
        ON f.charge_point_id = u.charge_point_id AND f.ts >= u.call_ts
       AND (u.next_update_ts IS NULL OR f.ts < u.next_update_ts)
       AND (epoch_us(f.ts) - epoch_us(u.call_ts)) / 1e6 <= $firmware_timeout_s
    GROUP BY ALL
),
-- The reboot that counts is the first BootNotification after Installed; a charger that reboots to
-- install (Installing -> boot -> Installed) counts with the first boot after Installing. A boot
-- before that (a Reset while downloading) is not the update's reboot.
booted AS (
    SELECT s.*, before.firmware_version AS old_version,
           after_installed.firmware_version AS installed_version,
           after_installed.ts AS installed_boot_ts,
           after_installed.unique_id AS installed_boot_unique_id,
           after_installing.firmware_version AS installing_version,
           after_installing.ts AS installing_boot_ts,
           after_installing.unique_id AS installing_boot_unique_id
    FROM statuses s
    ASOF LEFT JOIN boots before
        ON before.charge_point_id = s.charge_point_id AND s.call_ts >= before.ts
    ASOF LEFT JOIN boots after_installed
        ON after_installed.charge_point_id = s.charge_point_id
       AND after_installed.ts >= s.installed_ts
    ASOF LEFT JOIN boots after_installing
        ON after_installing.charge_point_id = s.charge_point_id
       AND after_installing.ts >= coalesce(s.installing_ts, s.downloaded_ts, s.downloading_ts,
                                           s.call_ts)
),
rebooted AS (
    SELECT *,
           CASE WHEN installed_boot_ts IS NOT NULL THEN installed_version
                WHEN installing_boot_ts <= installed_ts THEN installing_version END AS new_version,
           CASE WHEN installed_boot_ts IS NOT NULL THEN installed_boot_ts
                WHEN installing_boot_ts <= installed_ts THEN installing_boot_ts END AS boot_ts,
           CASE WHEN installed_boot_ts IS NOT NULL THEN installed_boot_unique_id
                WHEN installing_boot_ts <= installed_ts THEN installing_boot_unique_id
           END AS boot_unique_id
    FROM booted
),
judged AS (
    SELECT *,
           coalesce(boot_ts IS NOT NULL
                    AND (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6 <= $firmware_timeout_s
                    AND (next_update_ts IS NULL OR boot_ts < next_update_ts), false) AS has_reboot,
           downloading_ts <= coalesce(downloaded_ts, downloading_ts)
           AND coalesce(downloaded_ts, downloading_ts) <= coalesce(installing_ts, installed_ts)
           AND coalesce(installing_ts, installed_ts) <= installed_ts AS in_order
    FROM rebooted
)
SELECT charge_point_id, 'UpdateFirmware' AS "check",
       CASE WHEN answered AND answer_type = 'CALLRESULT' AND NOT failed
             AND downloading_ts IS NOT NULL AND installed_ts IS NOT NULL AND in_order
             AND has_reboot AND new_version IS DISTINCT FROM old_version
            THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'UpdateFirmware not answered'
            WHEN answer_type = 'CALLERROR' THEN 'UpdateFirmware answered ' || error_code
            WHEN failed THEN 'firmware update failed: ' || sequence
            WHEN downloading_ts IS NULL OR installed_ts IS NULL
                THEN 'FirmwareStatusNotification Downloading and Installed not both received (got '
                     || coalesce(sequence, 'none') || ')'
            WHEN NOT in_order THEN 'FirmwareStatusNotifications out of order: ' || sequence
            WHEN NOT has_reboot
                THEN sequence || ', but no reboot (BootNotification) after the update'
            WHEN new_version IS NOT DISTINCT FROM old_version
                THEN format('{}, rebooted, but firmwareVersion is still {}', sequence,
                            coalesce(new_version, 'not given'))
            ELSE format('{}, rebooted with firmware {} (was {})', sequence, new_version,
                        coalesce(old_version, 'unknown'))
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': installed_ts, 'unique_id': installed_unique_id},
                    {'ts': boot_ts, 'unique_id': boot_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
