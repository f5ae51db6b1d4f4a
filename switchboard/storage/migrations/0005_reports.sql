-- Switchboard schema, version 5: per-scenario analytics as views (issue 12), for
-- `switchboard report` and for any BI tool.  Views only: nothing is stored twice.
--
-- `day` is the date in the session's TimeZone: `switchboard report` sets it to the
-- company's timezone; a BI connection sets it with `SET TimeZone = 'Europe/Moscow'`
-- (or `ALTER DATABASE ... SET timezone = ...` for every connection).
-- switchboard/storage/reports.py queries them.

CREATE VIEW call_steps AS
SELECT c.call_id,
       c.started_at,
       c.started_at::date AS day,
       c.scenario AS call_scenario,
       coalesce(s.step ->> 'scenario', c.scenario) AS scenario,
       s.position::integer AS position,
       s.position = jsonb_array_length(c.steps) AS last_step,
       s.step ->> 'node' AS node,
       s.step ->> 'type' AS type,
       s.step ->> 'via' AS via,
       s.step ->> 'exit' AS exit,
       (s.step ->> 't')::double precision AS t,
       (s.step ->> 't_end')::double precision AS t_end,
       coalesce((s.step ->> 't_end')::double precision, c.duration_s)
           - (s.step ->> 't')::double precision AS in_node_s,
       coalesce(s.step -> 'details', '{}'::jsonb) AS details,
       c.result,
       c.duration_s
FROM calls c
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(c.steps) = 'array' THEN c.steps ELSE '[]'::jsonb END
) WITH ORDINALITY AS s (step, position);
COMMENT ON VIEW call_steps IS
    'One row per node an inbound call passed, in order (position 1..n; last_step: the call ended there).';

CREATE VIEW all_calls AS
SELECT 'inbound'::text AS call_type,
       c.call_id,
       NULL::bigint AS callback_id,
       c.started_at,
       c.ended_at,
       c.started_at::date AS day,
       c.scenario,
       c.called,
       c.caller,
       c.department,
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
       NULL::real,                             -- wait, talk and duration are not recorded
       NULL::real,
       NULL::real,
       NULL::integer,
       a.result = 'done',
       NULL::boolean,
       NULL::boolean,
       NULL::double precision
FROM callback_attempts a
JOIN callbacks b ON b.id = a.callback_id
LEFT JOIN calls o ON o.call_id = b.call_id;
COMMENT ON VIEW all_calls IS
    'Every call Switchboard made or took: inbound calls (calls) and call-back attempts (callback_attempts), by call_type.';

CREATE VIEW call_summary AS
SELECT day, call_type, scenario, called, department, agent, result, reason,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       count(*) FILTER (WHERE offered) AS offered,
       count(*) FILTER (WHERE answered AND wait_s <= 20) AS answered_within_20s,
       count(*) FILTER (WHERE transferred) AS transferred,
       count(*) FILTER (WHERE since_previous_s <= 24 * 3600) AS repeat_calls_24h,
       count(talk_s) AS talked,
       avg(wait_s) AS avg_wait_s,
       avg(talk_s) AS avg_talk_s,
       avg(duration_s) AS avg_duration_s,
       sum(wait_s::double precision) AS wait_s_sum,
       sum(talk_s::double precision) AS talk_s_sum,
       sum(duration_s::double precision) AS duration_s_sum
FROM all_calls
GROUP BY day, call_type, scenario, called, department, agent, result, reason;
COMMENT ON VIEW call_summary IS
    'Calls per day, type, scenario, number, department, agent, result and reason: counts, averages and sums.';

CREATE VIEW node_funnel AS
SELECT day, scenario, node, type,
       count(DISTINCT call_id) AS calls,
       count(*) AS visits,
       count(*) FILTER (WHERE last_step) AS ended,
       count(*) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned,
       avg(duration_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_after_s,
       avg(in_node_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_in_node_s
FROM call_steps
GROUP BY day, scenario, node, type;
COMMENT ON VIEW node_funnel IS
    'Per day, scenario and node: calls that entered, visits, calls that ended there, abandoned there and after how long.';

CREATE VIEW node_exits AS
SELECT day, scenario, node, via, exit, count(*) AS times
FROM call_steps
WHERE exit IS NOT NULL
GROUP BY day, scenario, node, via, exit;
COMMENT ON VIEW node_exits IS 'Per day, scenario and node: how often calls left it by each exit, to which node.';

CREATE VIEW menu_choices AS
SELECT day, scenario, node,
       CASE WHEN details ? 'choice' THEN 'option'
            WHEN details ? 'extension' THEN 'extension'
            WHEN exit IS NULL THEN 'ended'
            ELSE coalesce(via, 'default') END AS kind,
       coalesce(details ->> 'choice', details ->> 'extension') AS choice,
       count(*) AS times
FROM call_steps
WHERE type = 'menu'
GROUP BY 1, 2, 3, 4, 5;
COMMENT ON VIEW menu_choices IS
    'Per day and menu: what callers chose (an option''s key, an extension), took the default, or ended there.';
