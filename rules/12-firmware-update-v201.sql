/*+++
id = "firmware-update-v201"
title = "Remote firmware update"
criterion = """After UpdateFirmware (with its requestId) is accepted, FirmwareStatusNotifications
with that requestId go from Downloading to Installed (Downloaded, SignatureVerified, InstallRebooting
and Installing in order when sent), and the charger reboots: a BootNotification with reason
FirmwareUpdate and the new firmwareVersion."""
function = 12
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 L01 Secure Firmware Update", "OCTT TC_L_01", "OCTT TC_L_07", "OCTT TC_L_09"]
[params]
firmware_timeout_s = 3600   # statuses and the reboot within this after UpdateFirmware
+++*/
-- OCPP 2.0.1 L01.FR.xx: every FirmwareStatusNotificationRequest of an update carries its requestId;
-- L01.FR.15: InstallRebooting before rebooting; the BootNotification after it has reason
-- FirmwareUpdate.
WITH updates AS (
    SELECT *, TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id
    FROM calls
    WHERE action = 'UpdateFirmware' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
),
statuses AS (
    SELECT u.charge_point_id, u.unique_id, u.call_ts, u.answered, u.answer_type, u.error_code,
           u.status, u.request_id,
           min(f.ts) FILTER (WHERE f.status = 'Downloading') AS downloading_ts,
           min(f.ts) FILTER (WHERE f.status = 'Downloaded') AS downloaded_ts,
           min(f.ts) FILTER (WHERE f.status = 'SignatureVerified') AS verified_ts,
           min(f.ts) FILTER (WHERE f.status = 'InstallRebooting') AS rebooting_ts,
           min(f.ts) FILTER (WHERE f.status = 'Installing') AS installing_ts,
           min(f.ts) FILTER (WHERE f.status = 'Installed') AS installed_ts,
           arg_min(f.unique_id, f.ts) FILTER (WHERE f.status = 'Installed') AS installed_unique_id,
           coalesce(bool_or(f.status IN ('DownloadFailed', 'InstallationFailed',
                                         'InvalidSignature', 'InstallVerificationFailed')), false)
               AS failed,
           string_agg(f.status, ' -> ' ORDER BY f.ts) AS sequence
    FROM updates u
    LEFT JOIN firmware_status f
      ON f.charge_point_id = u.charge_point_id AND f.request_id = u.request_id
     AND f.ts >= u.call_ts AND (epoch_us(f.ts) - epoch_us(u.call_ts)) / 1e6 <= $firmware_timeout_s
    GROUP BY ALL
),
booted AS (
    SELECT s.*, before.firmware_version AS old_version,
           after.firmware_version AS new_version, after.ts AS boot_ts,
           after.unique_id AS boot_unique_id, after.reason AS boot_reason
    FROM statuses s
    ASOF LEFT JOIN (SELECT * FROM boots WHERE ocpp_version IN ('2.0.1', '2.1')) before
        ON before.charge_point_id = s.charge_point_id AND s.call_ts >= before.ts
    ASOF LEFT JOIN (SELECT * FROM boots WHERE ocpp_version IN ('2.0.1', '2.1')) after
        ON after.charge_point_id = s.charge_point_id
       AND after.ts >= coalesce(s.rebooting_ts, s.installing_ts, s.verified_ts, s.downloaded_ts,
                                s.downloading_ts, s.call_ts)
),
judged AS (
    SELECT *,
           coalesce(boot_ts IS NOT NULL
                    AND (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6 <= $firmware_timeout_s,
                    false) AS has_reboot,
           coalesce(list_sort(list_filter([downloading_ts, downloaded_ts, verified_ts,
                                           rebooting_ts, installing_ts],
                                          lambda t: t IS NOT NULL))
                    = list_filter([downloading_ts, downloaded_ts, verified_ts, rebooting_ts,
                                   installing_ts], lambda t: t IS NOT NULL), true)
           AND downloading_ts <= installed_ts AS in_order
    FROM booted
)
SELECT charge_point_id, 'UpdateFirmware' AS "check",
       CASE WHEN answered AND answer_type = 'CALLRESULT' AND status = 'Accepted' AND NOT failed
             AND downloading_ts IS NOT NULL AND installed_ts IS NOT NULL AND in_order
             AND has_reboot AND boot_reason = 'FirmwareUpdate'
             AND new_version IS DISTINCT FROM old_version
            THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'UpdateFirmware not answered'
            WHEN answer_type = 'CALLERROR' THEN 'UpdateFirmware answered ' || error_code
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'UpdateFirmware answered ' || coalesce(status, 'without a status')
            WHEN failed THEN format('firmware update {} failed: {}', request_id, sequence)
            WHEN downloading_ts IS NULL OR installed_ts IS NULL
                THEN format('FirmwareStatusNotification Downloading and Installed with requestId '
                            || '{} not both received (got {})', request_id,
                            coalesce(sequence, 'none'))
            WHEN NOT in_order THEN 'FirmwareStatusNotifications out of order: ' || sequence
            WHEN NOT has_reboot
                THEN sequence || ', but no reboot (BootNotification) after the update'
            WHEN boot_reason IS DISTINCT FROM 'FirmwareUpdate'
                THEN format('{}, rebooted with reason {}, not FirmwareUpdate', sequence,
                            coalesce(boot_reason, 'missing'))
            WHEN new_version IS NOT DISTINCT FROM old_version
                THEN format('{}, rebooted, but firmwareVersion is still {}', sequence,
                            coalesce(new_version, 'not given'))
            ELSE format('{} (requestId {}), rebooted (FirmwareUpdate) with firmware {} (was {})',
                        sequence, request_id, new_version, coalesce(old_version, 'unknown'))
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': installed_ts, 'unique_id': installed_unique_id},
                    {'ts': boot_ts, 'unique_id': boot_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
