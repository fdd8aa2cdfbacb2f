-- Sample data for `lifeboat demo`: a small shop with customers, products,
-- orders and their items. Deterministic, a few thousand rows. Two customers
-- share an e-mail address that differs only in case, which is what makes
-- the demo upgrade's third step fail.

create table customers (
  id bigint generated always as identity primary key,
  email text not null,
  full_name text not null,
  country char(2) not null,
  created_at timestamptz not null
);

create table products (
  id serial primary key,
  sku text not null unique,
  title text not null,
  price numeric(10, 2) not null check (price >= 0),
  tags text[] not null default '{}'
);

create type order_state as enum ('open', 'paid', 'shipped', 'cancelled');

create table orders (
  id bigserial primary key,
  customer_id bigint not null references customers (id),
  state order_state not null,
  placed_at timestamptz not null,
  shipping jsonb
);

create table order_items (
  order_id bigint not null references orders (id) on delete cascade,
  product_id integer not null references products (id),
  quantity integer not null check (quantity > 0),
  unit_price numeric(10, 2) not null,
  primary key (order_id, product_id)
);

create index orders_customer_idx on orders (customer_id);

create view order_totals as
  select o.id as order_id, o.customer_id, sum(i.quantity * i.unit_price) as total
    from orders o join order_items i on i.order_id = o.id
   group by o.id, o.customer_id;

insert into customers (email, full_name, country, created_at)
select 'customer' || g || '@example.com',
       'Customer ' || g,
       (array['DE', 'FR', 'US', 'JP', 'BR', 'IN'])[1 + g % 6],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '37 minutes'
  from generate_series(1, 2000) g;

-- The same person signed up twice, once with capitals.
insert into customers (email, full_name, country, created_at)
values ('Customer42@Example.com', 'Customer 42 (again)', 'DE', timestamptz '2025-06-01 12:00:00+00');

insert into products (sku, title, price, tags)
select 'SKU-' || lpad(g::text, 5, '0'),
       'Product ' || g,
       round((5 + (g * 7919 % 500) / 3.0)::numeric, 2),
       case when g % 3 = 0 then array['sale'] else array[]::text[] end
  from generate_series(1, 200) g;

insert into orders (customer_id, state, placed_at, shipping)
select 1 + (g * 7 % 2000),
       (array['open', 'paid', 'shipped', 'cancelled']::order_state[])[1 + g % 4],
       timestamptz '2024-02-01 00:00:00+00' + g * interval '11 minutes',
       case when g % 4 = 2 then jsonb_build_object('carrier', 'DHL', 'tracking', 'TRK' || g) end
  from generate_series(1, 8000) g;

insert into order_items (order_id, product_id, quantity, unit_price)
select o.id, 1 + ((o.id * 31 + k * 17) % 200), 1 + (o.id + k) % 4, p.price
  from orders o
 cross join generate_series(0, 2) k
  join products p on p.id = 1 + ((o.id * 31 + k * 17) % 200);
