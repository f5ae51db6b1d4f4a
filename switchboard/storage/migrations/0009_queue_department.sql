-- Switchboard schema, version 9: three leftovers of the per-scenario analytics (issue 12).
--
-- 1. A call carries the department of the queue its caller waited in (queue_department).
--    A call's `department` names the department that answered it, so a caller who hung
--    up in a queue had none and was left out of that department's service level.  In
--    `all_calls`, `department` is now the one that answered, else the one whose queue the
--    caller last waited in.
-- 2. `node_funnel` counts the calls that passed a node more than once (`repeated`).
-- 3. A call-back attempt records how long it lasted: wait_s (from dialling to the
--    employee and the customer meeting; the whole attempt when they never met), talk_s
--    and duration_s, so `all_calls` shows them for call-backs too.

ALTER TABLE calls ADD COLUMN queue_department text;
COMMENT ON COLUMN calls.queue_department IS
    'The department of the last queue the caller waited in (NULL: no queue); an abandoned call''s too.';

ALTER TABLE callback_attempts
    ADD COLUMN wait_s real, ADD COLUMN talk_s real, ADD COLUMN duration_s real;
COMMENT ON COLUMN callback_attempts.wait_s IS
    'Seconds from the first dial to the employee and the customer meeting (the whole attempt if they never met).';
COMMENT ON COLUMN callback_attempts.talk_s IS
    'Seconds the employee and the customer talked (NULL: they never met, or the end was not recorded).';
COMMENT ON COLUMN callback_attempts.duration_s IS
    'Seconds from the first dial to the end of the attempt (NULL: not recorded, e.g. its instance died).';

-- Calls recorded before: the steps name the queue node, not its department.  A call that
-- was answered in a queue (its last step) has that queue's department as its own; every
-- call through the same queue node in the same configuration version gets it too.  A
-- queue nobody was answered in stays NULL.
WITH last_queue AS (
    SELECT c.call_id, c.config_version, q.scenario, q.node
    FROM calls c
    CROSS JOIN LATERAL (
        SELECT coalesce(s.step ->> 'scenario', c.scenario) AS scenario, s.step ->> 'node' AS node
        FROM jsonb_array_elements(
            CASE WHEN jsonb_typeof(c.steps) = 'array' THEN c.steps ELSE '[]'::jsonb END
        ) WITH ORDINALITY AS s (step, position)
        WHERE s.step ->> 'type' = 'queue'
        ORDER BY s.position DESC
        LIMIT 1
    ) q
), answered_in AS (
    SELECT l.config_version, l.scenario, l.node, min(c.department) AS department
    FROM last_queue l
    JOIN calls c USING (call_id)
    WHERE c.result = 'connected' AND c.department IS NOT NULL
      AND c.steps -> -1 ->> 'type' = 'queue'
    GROUP BY l.config_version, l.scenario, l.node
    HAVING count(DISTINCT c.department) = 1
)
UPDATE calls c
SET queue_department = a.department
FROM last_queue l
JOIN answered_in a ON a.config_version IS NOT DISTINCT FROM l.config_version
                  AND a.scenario = l.scenario AND a.node = l.node
WHERE c.call_id = l.call_id;

CREATE OR REPLACE VIEW all_calls AS
SELECT 'inbound'::text AS call_type,
       c.call_id,
       NULL::bigint AS callback_id,
       c.started_at,
       c.ended_at,
       c.started_at::date AS day,
       c.scenario,
       c.called,
       c.caller,
       -- the department that answered, else the one whose queue the caller waited in
       coalesce(c.department, c.queue_department) AS department,
       c.agent,
       c.result,
       c.reason,
       c.wait_s,
       c.talk_s,
       c.duration_s,
       c.transfers,
       c.result = 'connected' AS answered,
       -- offered to a person: it rang someone, waited in a queue or reached a dial node
       c.result = 'connected' OR c.steps @? '$[*] ? (@.type == "dial" || @.type == "queue"
           || exists (@.events[*] ? (@.event == "ring")))' AS offered,
       c.transfers > 0 AS transferred,
       extract(epoch FROM c.started_at - previous.started_at)::double precision
           AS since_previous_s
FROM calls c
LEFT JOIN LATERAL (
    -- the same caller's previous call (calls_caller_started); withheld numbers are nobody
    SELECT p.started_at FROM calls p
    WHERE p.caller = c.caller AND c.caller NOT IN ('', 'unknown', 'anonymous')
      AND p.started_at <= c.started_at
      AND (p.started_at < c.started_at OR p.call_id < c.call_id)
    ORDER BY p.started_at DESC
    LIMIT 1
) previous ON true
UNION ALL
SELECT 'callback'::text,
       b.call_id,                              -- the inbound call that asked for it
       b.id,
       a.started_at,
       a.ended_at,
       a.started_at::date,
       b.scenario,
       o.called,                               -- the number the customer had called
       b.number,                               -- the number called back
       b.department,
       a.agent,
       a.result,                               -- done, no answer, busy, customer hung up ...
       NULL::text,
       a.wait_s,                               -- NULL for attempts recorded before version 9
       a.talk_s,
       a.duration_s,
       NULL::integer,
       a.result = 'done',
       NULL::boolean,
       NULL::boolean,
       NULL::double precision
FROM callback_attempts a
JOIN callbacks b ON b.id = a.callback_id
LEFT JOIN calls o ON o.call_id = b.call_id;

CREATE OR REPLACE VIEW node_funnel AS
SELECT day, scenario, node, type,
       count(DISTINCT call_id) AS calls,
       count(*) AS visits,
       count(*) FILTER (WHERE last_step) AS ended,
       count(*) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned,
       avg(duration_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_after_s,
       avg(in_node_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_in_node_s,
       count(DISTINCT call_id) FILTER (WHERE passes > 1) AS repeated
FROM (
    -- passes: how many times this step's call passed this node (`day` keeps a filter on
    -- it below the window)
    SELECT day, call_id, scenario, node, type, last_step, result, duration_s, in_node_s,
           count(*) OVER (PARTITION BY day, call_id, scenario, node) AS passes
    FROM call_steps
) s
GROUP BY day, scenario, node, type;
COMMENT ON VIEW node_funnel IS
    'Per day, scenario and node: calls that entered, visits, calls that ended there, abandoned there and after how long, calls that passed it more than once.';
